//! Station siting (pure computation on an in-memory [`Dataset`] and its [`Analysis`]; reading a
//! candidate CSV is the command line's ([`crate::cli::plan`]), writing plan files the output
//! stage's ([`crate::output::plan`]).
//!
//! # Problems
//! - **MCLP** (maximal covering): choose `K` new stations of a level to maximise the veterans
//!   *newly* within the service radius. Households already within that radius of an active
//!   station of the level (or within a station's own larger radius, e.g. a mobile one) count
//!   as covered.
//! - **LSCP** (set covering): the fewest new stations so that every veteran the candidates can
//!   reach, or a target share of all veterans in scope (`target`), is covered.
//! - **p-median**: `K` new stations minimising the veteran-weighted mean ground distance to the
//!   nearest station of the level (existing or new).
//! - **Capacitated MCLP** (`capacity`): every station (existing or new) serves at most `C`
//!   veterans; veterans beyond the capacity of their nearest station spill to the next within
//!   the radius (see [`capacity`]); the objective counts served veterans only.
//!
//! Every plan reports its objective, a bound on the optimum from the other side and the gap:
//! `(bound − objective) / bound` for MCLP, `(objective − bound) / objective` for LSCP and
//! p-median. Solvers: lazy greedy (CELF) then swap local search, bounded by Lagrangian
//! relaxation with subgradient steps ([`engine`]).
//!
//! # Demand and candidates
//! Demand points are the households with veterans (weight = veterans) in scope: all of them, or
//! those within the `within` unit. For MCLP and LSCP, uncovered households reached by exactly
//! the same candidates are merged into one demand point (an exact reduction). Candidate sites
//! ([`CandidateSource`]): by default the villages and communities without an active station of
//! the level, each at a point inside its boundary (its centroid when inside, else an interior
//! point; the mean of its households when it has no boundary); or grid centroids; or H3 cells
//! (through `h3o`) over the uncovered households; or the user's sites. Distances are ground
//! metres on the sphere ([`crate::index::sphere`]).
//!
//! # Within one unit
//! A plan `within` a unit depends only on the households assigned to it and below, the
//! candidates located in it, every station, and the boundaries that decide where those lie; its
//! summary lists that unit and the units below it. So it can be made on a folder read for that
//! unit alone ([`crate::ingest::read_data_folder_within`], what `gridcover plan --within` does)
//! and is the same plan, file for file, as on the whole folder.
//!
//! # Bounds and time budget
//! Every numeric input has a range ([`limits`]: radius 100 m … 100 km, K ≤ 5,000, capacity ≤
//! 1,000,000, H3 resolution 0–15, target (0, 1], list lengths), checked before any work by
//! [`Bounds::check_plan`]; ids repeated in `require` or `exclude` count once. The household ×
//! site pairs an instance would hold (coverage sets, p-median distance pairs, capacity × reach)
//! are estimated from a sample before they are built and refused over [`Bounds::max_pairs`]
//! ([`PlanError::TooLarge`]); building also stops there. [`solve_within`] takes a [`Budget`]
//! that the long loops check ([`PlanError::OutOfTime`] once it runs out).
//!
//! # Library entry point
//! [`solve`] (or [`solve_with_progress`], or [`solve_within`] with bounds and a budget) takes a
//! [`PlanRequest`] and returns a [`PlanResult`];
//! both are serde-serialisable, so a server can take the request as JSON and return the result:
//!
//! ```no_run
//! use gridcover::{analysis::analyze, ingest::read_data_folder, plan};
//! let ds = read_data_folder(std::path::Path::new("data/generated/gansu")).unwrap();
//! let an = analyze(&ds);
//! let req: plan::PlanRequest = serde_json::from_str(r#"{"problem":"mclp","level":"village","new":10}"#).unwrap();
//! let res = plan::solve(&ds, &an, &req).unwrap();
//! println!("{} newly covered, bound {}, gap {:.3}%", res.objective, res.bound, res.gap * 100.0);
//! ```

mod candidates;
pub mod capacity;
pub mod engine;
pub mod limits;
mod solve;
mod summary;

pub use candidates::{default_h3_resolution, parse_sites_csv, Candidate};
pub use limits::{Bounds, Budget};

use std::collections::HashMap;
use std::str::FromStr;

use rayon::prelude::*;
use rstar::primitives::GeomWithData;
use rstar::RTree;
use serde::{Deserialize, Serialize};

use crate::analysis::Analysis;
use crate::index::sphere::{chord_2, chord_2_to_m, m_to_chord_2, to_unit, Unit3};
use crate::model::{Dataset, Level};

use engine::{Constraints, Instance, Options, NO_GROUP};

/// The siting problem to solve.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Problem {
    /// Maximal covering: most veterans newly covered by `K` new sites.
    #[default]
    Mclp,
    /// Set covering: fewest new sites reaching every coverable veteran, or a target share.
    Lscp,
    /// p-median: least veteran-weighted mean distance to the nearest station with `K` new sites.
    #[serde(alias = "p-median")]
    Pmedian,
}

impl Problem {
    /// Name as written on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Problem::Mclp => "mclp",
            Problem::Lscp => "lscp",
            Problem::Pmedian => "pmedian",
        }
    }
}

impl FromStr for Problem {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "mclp" => Ok(Problem::Mclp),
            "lscp" => Ok(Problem::Lscp),
            "pmedian" | "p-median" | "p_median" => Ok(Problem::Pmedian),
            o => Err(format!("unknown problem {o:?} (expected mclp, lscp or pmedian)")),
        }
    }
}

/// A candidate site given by the user.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Site {
    /// Its own id.
    pub id: String,
    /// WGS84 longitude, degrees.
    pub lon: f64,
    /// WGS84 latitude, degrees.
    pub lat: f64,
}

/// Where candidate sites come from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum CandidateSource {
    /// Villages and communities without an active station of the level (id = village code).
    #[default]
    Villages,
    /// Centroids of the service grids (id = grid id).
    Grids,
    /// Centres of the H3 cells holding uncovered households (id = the cell index).
    H3 {
        /// H3 resolution 0–15; default: the coarsest whose mean edge is at most a third of the radius.
        #[serde(default)]
        resolution: Option<u8>,
    },
    /// The user's sites.
    Sites {
        /// The sites.
        sites: Vec<Site>,
    },
}

/// What to plan (the fields of `gridcover plan`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PlanRequest {
    /// The problem.
    pub problem: Problem,
    /// Level of the new stations.
    pub level: Level,
    /// New sites `K` (MCLP, p-median: required; LSCP: an optional cap).
    pub new: Option<usize>,
    /// Service radius in metres (default: the standard radius of the level).
    pub radius_m: Option<f64>,
    /// Capacity of every station in veterans (MCLP only).
    pub capacity: Option<u32>,
    /// Only candidates (and demand) within this admin unit (statistical code).
    pub within: Option<String>,
    /// At most this many new sites per county.
    pub max_per_county: Option<usize>,
    /// Candidate sites.
    pub candidates: CandidateSource,
    /// LSCP: share (0–1] of the veterans in scope to cover; default every coverable veteran.
    pub target: Option<f64>,
    /// Candidate ids every plan must contain.
    pub require: Vec<String>,
    /// Candidate ids no plan may contain.
    pub exclude: Vec<String>,
}

impl Default for PlanRequest {
    fn default() -> Self {
        PlanRequest {
            problem: Problem::Mclp,
            level: Level::Village,
            new: None,
            radius_m: None,
            capacity: None,
            within: None,
            max_per_county: None,
            candidates: CandidateSource::Villages,
            target: None,
            require: Vec::new(),
            exclude: Vec::new(),
        }
    }
}

/// Why a plan could not be made (each names the offending input).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum PlanError {
    /// The radius is not a positive number of metres within [`limits::RADIUS_M`].
    #[error("radius must be a positive number of metres, from 100 to 100000 (`radius_m`), got {0}")]
    BadRadius(f64),
    /// A numeric input or a list is out of its range ([`limits`]).
    #[error("`{field}` = {value} is out of range: {bound}")]
    OutOfRange {
        /// The request's field.
        field: &'static str,
        /// The value given.
        value: String,
        /// The range allowed.
        bound: String,
    },
    /// The instance would be larger than allowed (a server answers 413).
    #[error("the plan would build about {estimate} {what}, more than the bound of {limit}; use a smaller radius_m, fewer candidates or `within`")]
    TooLarge {
        /// What would be too many.
        what: &'static str,
        /// How many (estimated, or counted when the building stopped).
        estimate: usize,
        /// The bound.
        limit: usize,
    },
    /// The time budget ran out and the work stopped (a server answers 503).
    #[error("the plan was stopped: it took longer than its time budget of {seconds} s")]
    OutOfTime {
        /// Seconds allowed.
        seconds: f64,
    },
    /// `new` is missing or zero where the problem needs it.
    #[error("{0} needs --new K (the number of new sites, at least 1)")]
    MissingK(&'static str),
    /// More new sites asked than there are candidates.
    #[error("--new {k} is more than the {candidates} candidate sites")]
    KTooLarge {
        /// Sites asked.
        k: usize,
        /// Candidates available.
        candidates: usize,
    },
    /// No statistical division has this code.
    #[error("unknown admin code {0:?}")]
    UnknownCode(String),
    /// No candidate is left.
    #[error("no candidate sites: {0}")]
    NoCandidates(String),
    /// A required or excluded id names no candidate.
    #[error("{what} site {id:?} is not among the candidate sites")]
    UnknownSite {
        /// "required" or "excluded".
        what: &'static str,
        /// The id given.
        id: String,
    },
    /// A site is both required and excluded, or required more than allowed.
    #[error("{0}")]
    Conflict(String),
    /// The target share is not in (0, 1].
    #[error("target must be a share in (0, 1], got {0}")]
    BadTarget(f64),
    /// Some other option is invalid.
    #[error("{0}")]
    BadOption(String),
    /// A candidate file is bad.
    #[error("{file} row {row}: {reason}")]
    BadCandidateFile {
        /// File name.
        file: String,
        /// 1-based line (the header is line 1); 0 for the file as a whole.
        row: usize,
        /// What is wrong.
        reason: String,
    },
}

/// What kind of failure a [`PlanError`] is: the one classification both edges map from (the
/// command line's exit code, the server's status).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlanErrorKind {
    /// The request cannot be planned as asked (an input out of range, unknown, in conflict).
    BadRequest,
    /// The instance would be larger than its bound.
    TooLarge,
    /// The work was stopped by its time budget.
    OutOfTime,
}

impl PlanError {
    /// The kind of this failure (an exhaustive match: a new variant is a decision).
    pub fn kind(&self) -> PlanErrorKind {
        match self {
            PlanError::TooLarge { .. } => PlanErrorKind::TooLarge,
            PlanError::OutOfTime { .. } => PlanErrorKind::OutOfTime,
            PlanError::BadRadius(_)
            | PlanError::OutOfRange { .. }
            | PlanError::MissingK(_)
            | PlanError::KTooLarge { .. }
            | PlanError::UnknownCode(_)
            | PlanError::NoCandidates(_)
            | PlanError::UnknownSite { .. }
            | PlanError::Conflict(_)
            | PlanError::BadTarget(_)
            | PlanError::BadOption(_)
            | PlanError::BadCandidateFile { .. } => PlanErrorKind::BadRequest,
        }
    }
}

/// One chosen site.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChosenSite {
    /// 1-based position in the plan (required sites first, then by decreasing contribution).
    pub rank: usize,
    /// The candidate's own id (village code, grid id, H3 cell or the user's id).
    pub id: String,
    /// Name, where the candidate has one (the village's).
    pub name: String,
    /// Where the candidate came from: village, grid, h3 or csv.
    pub source: String,
    /// WGS84 longitude.
    pub lon: f64,
    /// WGS84 latitude.
    pub lat: f64,
    /// True for a required site.
    pub required: bool,
    /// Veterans within the radius of this site and of no station or site before it in the plan.
    pub newly_covered_veterans: u64,
    /// Its marginal contribution to the objective, in plan order (MCLP: veterans newly covered
    /// or served; LSCP: veterans newly covered; p-median: veteran-metres of distance saved).
    pub gain: f64,
    /// Capacitated MCLP: veterans it serves in the final allocation.
    pub served_veterans: Option<f64>,
    /// Statistical codes of its admin units, province to village (empty where unknown).
    pub codes: [String; 5],
}

/// Coverage of one admin unit before and after the plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UnitChange {
    /// Statistical code.
    pub code: String,
    /// Name.
    pub name: String,
    /// Level.
    pub level: Level,
    /// Parent code ("" for the province).
    pub parent_code: String,
    /// Veterans in the unit.
    pub veterans: u64,
    /// Veterans within the radius of a station of the plan's level, before.
    pub covered_before: u64,
    /// The same after adding the plan's sites.
    pub covered_after: u64,
    /// `covered_before / veterans` (NaN serialises as null).
    pub share_before: Option<f64>,
    /// `covered_after / veterans`.
    pub share_after: Option<f64>,
    /// Veteran-weighted mean distance to the nearest station of the level, before, metres.
    pub mean_distance_before_m: Option<f64>,
    /// The same after.
    pub mean_distance_after_m: Option<f64>,
    /// New sites inside the unit.
    pub new_sites: u64,
}

/// A plan: the chosen sites, objective, bound and gap, and coverage before and after.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanResult {
    /// The request, as understood (defaults filled in).
    pub request: PlanRequest,
    /// The radius used, metres.
    pub radius_m: f64,
    /// What the objective counts.
    pub objective_name: String,
    /// The plan's objective value.
    pub objective: f64,
    /// Bound on the optimum (upper for MCLP, lower for LSCP and p-median).
    pub bound: f64,
    /// Relative gap between objective and bound (0 = proven optimal).
    pub gap: f64,
    /// The chosen sites in order.
    pub sites: Vec<ChosenSite>,
    /// Candidate sites considered.
    pub candidates: usize,
    /// Households with veterans in scope.
    pub households: usize,
    /// Demand points the solver worked on (after merging equivalent households).
    pub demand_points: usize,
    /// Veterans in scope.
    pub veterans: u64,
    /// Veterans in scope within the radius of a station of the level, before.
    pub covered_before: u64,
    /// The same after.
    pub covered_after: u64,
    /// Veterans in scope no candidate can reach (MCLP/LSCP), still uncovered.
    pub unreachable_veterans: u64,
    /// Capacitated: veterans served before and after.
    pub served_before: Option<f64>,
    /// Capacitated: veterans served after.
    pub served_after: Option<f64>,
    /// Veteran-weighted mean distance to the nearest station of the level, before (metres).
    pub mean_distance_before_m: Option<f64>,
    /// The same after.
    pub mean_distance_after_m: Option<f64>,
    /// Every admin unit of the plan's level and above, before and after; with `within`, that
    /// unit and the units below it.
    pub units: Vec<UnitChange>,
    /// Swaps made by local search.
    pub swaps: usize,
    /// Subgradient iterations of the bound.
    pub bound_iterations: usize,
    /// Things worth telling (fewer sites than asked, a capped target, dropped candidates).
    pub notes: Vec<String>,
    /// Seconds in all.
    pub seconds: f64,
    /// Seconds per phase.
    pub timings: Vec<(String, f64)>,
}

/// Solves `req` on `ds` (analysed as `an`).
///
/// # Errors
/// See [`PlanError`]: bad radius, K, target or capacity, unknown code or site, no candidates.
pub fn solve(ds: &Dataset, an: &Analysis, req: &PlanRequest) -> Result<PlanResult, PlanError> {
    solve_with_progress(ds, an, req, &mut |_, _, _| {})
}

/// [`solve`], reporting progress as (phase, done, total).
///
/// # Errors
/// As [`solve`].
pub fn solve_with_progress(
    ds: &Dataset,
    an: &Analysis,
    req: &PlanRequest,
    progress: &mut dyn FnMut(&str, u64, u64),
) -> Result<PlanResult, PlanError> {
    solve_within(ds, an, req, &Bounds::default(), &Budget::unlimited(), progress)
}

/// [`solve_with_progress`] under `bounds` (checked first, [`Bounds::check_plan`]) and a time
/// `budget`: the long loops check it and stop once it runs out. The steps are in
/// `plan/solve.rs`: check the request, build the candidates, solve the problem, summarise.
///
/// # Errors
/// As [`solve`]; [`PlanError::OutOfRange`] for an input out of `bounds`,
/// [`PlanError::TooLarge`] when the instance would hold more than `bounds.max_pairs` pairs,
/// [`PlanError::OutOfTime`] when the budget runs out.
pub fn solve_within(
    ds: &Dataset,
    an: &Analysis,
    req: &PlanRequest,
    bounds: &Bounds,
    budget: &Budget,
    progress: &mut dyn FnMut(&str, u64, u64),
) -> Result<PlanResult, PlanError> {
    solve::run(ds, an, req, bounds, budget, progress)
}

fn rel(diff: f64, of: f64) -> f64 {
    if of.abs() < 1e-12 {
        0.0
    } else {
        (diff / of).max(0.0)
    }
}

type Tree = RTree<GeomWithData<Unit3, u32>>;

fn tree_of(pts: &[Unit3]) -> Tree {
    RTree::bulk_load(pts.iter().enumerate().map(|(j, &p)| GeomWithData::new(p, j as u32)).collect())
}

/// Points sampled by [`estimate_pairs`].
const PAIR_SAMPLE: usize = 512;

/// The pairs of `n` points, estimated from the counts of an evenly spaced sample of them
/// (`count(i)`: the pairs of point `i`). Households are stored village by village, so the
/// sample spreads over the whole area.
fn estimate_pairs(n: usize, count: impl Fn(usize) -> usize) -> usize {
    if n == 0 {
        return 0;
    }
    let step = n.div_ceil(PAIR_SAMPLE).max(1);
    let (mut pairs, mut seen) = (0usize, 0usize);
    for i in (0..n).step_by(step) {
        pairs = pairs.saturating_add(count(i));
        seen += 1;
    }
    ((pairs as f64) * (n as f64) / (seen as f64)).min(usize::MAX as f64) as usize
}

/// Refuses an instance of `estimate` pairs when that is over `limit`.
fn refuse_over(what: &'static str, estimate: usize, limit: usize) -> Result<(), PlanError> {
    if estimate > limit {
        Err(PlanError::TooLarge { what, estimate, limit })
    } else {
        Ok(())
    }
}

/// Counts the pairs built so far across threads and says when to stop: over the limit, or out
/// of time.
struct PairGuard<'a> {
    n: std::sync::atomic::AtomicUsize,
    limit: usize,
    budget: &'a Budget,
}

impl<'a> PairGuard<'a> {
    fn new(limit: usize, budget: &'a Budget) -> Self {
        PairGuard { n: std::sync::atomic::AtomicUsize::new(0), limit, budget }
    }
    /// Adds `k` pairs; false once the limit is passed or the budget is out.
    fn add(&self, k: usize) -> bool {
        let before = self.n.fetch_add(k, std::sync::atomic::Ordering::Relaxed);
        before.saturating_add(k) <= self.limit && !self.budget.exhausted()
    }
    fn over(&self) -> bool {
        self.n.load(std::sync::atomic::Ordering::Relaxed) > self.limit
    }
    fn finish(&self, what: &'static str) -> Result<(), PlanError> {
        if self.over() {
            return Err(PlanError::TooLarge {
                what,
                estimate: self.n.load(std::sync::atomic::Ordering::Relaxed),
                limit: self.limit,
            });
        }
        self.budget.check()
    }
}

/// For each candidate, the demand points (positions in `dem_pts`) within squared chord `r2`.
fn reach_sets(
    cand_pts: &[Unit3],
    dem_pts: &[Unit3],
    r2: f64,
    progress: &mut dyn FnMut(&str, u64, u64),
) -> Vec<Vec<u32>> {
    reach_sets_within(cand_pts, dem_pts, r2, usize::MAX, &Budget::unlimited(), progress).expect("no limit, no budget")
}

/// [`reach_sets`], stopping once more than `limit` pairs are built or the budget runs out.
fn reach_sets_within(
    cand_pts: &[Unit3],
    dem_pts: &[Unit3],
    r2: f64,
    limit: usize,
    budget: &Budget,
    progress: &mut dyn FnMut(&str, u64, u64),
) -> Result<Vec<Vec<u32>>, PlanError> {
    progress("coverage sets", 0, cand_pts.len() as u64);
    let tree = tree_of(dem_pts);
    let guard = PairGuard::new(limit, budget);
    let sets = cand_pts
        .par_iter()
        .map(|c| {
            if guard.over() || budget.exhausted() {
                return Vec::new();
            }
            let mut v: Vec<u32> = Vec::new();
            for e in tree.locate_within_distance(*c, r2) {
                v.push(e.data);
                if v.len() % 4096 == 0 && !guard.add(4096) {
                    return Vec::new();
                }
            }
            guard.add(v.len() % 4096);
            v.sort_unstable();
            v
        })
        .collect();
    guard.finish("candidate × household pairs (coverage sets)")?;
    progress("coverage sets", cand_pts.len() as u64, cand_pts.len() as u64);
    Ok(sets)
}

/// MCLP on plain points (WGS84 lon/lat degrees): the `k` candidates that cover the most
/// demand weight within `radius_m` ground metres, with its Lagrangian bound. Demand points
/// reached by the same candidates are merged first. Used by the comparison with PySAL spopt.
///
/// Returns the solution (site indices into `cand`) and the number of merged demand points.
pub fn mclp_on_points(
    demand: &[(f64, f64)],
    weight: &[f64],
    cand: &[(f64, f64)],
    radius_m: f64,
    k: usize,
    opts: &Options,
) -> (engine::MinSumSolution, usize) {
    let dem_pts: Vec<Unit3> = demand.iter().map(|&(x, y)| to_unit(x, y)).collect();
    let cand_pts: Vec<Unit3> = cand.iter().map(|&(x, y)| to_unit(x, y)).collect();
    let sets = reach_sets(&cand_pts, &dem_pts, m_to_chord_2(radius_m), &mut |_, _, _| {});
    let agg = aggregate(&sets, demand.len(), |p| weight[p]);
    let inst = Instance::covering(agg.weight, &agg.sets, vec![NO_GROUP; cand.len()]);
    let c = Constraints { k, ..Default::default() };
    let n = inst.n_demand();
    (engine::solve_minsum(&inst, &c, opts, &mut |_, _, _| {}), n)
}

/// Demand points after merging households reached by exactly the same candidates.
struct Aggregated {
    weight: Vec<f64>,
    sets: Vec<Vec<u32>>,
    unreachable: f64,
}

fn aggregate(sets: &[Vec<u32>], n: usize, w: impl Fn(usize) -> f64) -> Aggregated {
    let mut rev: Vec<Vec<u32>> = vec![Vec::new(); n];
    for (j, s) in sets.iter().enumerate() {
        for &p in s {
            rev[p as usize].push(j as u32);
        }
    }
    let mut key_of: HashMap<&[u32], u32> = HashMap::new();
    let mut weight = Vec::new();
    let mut unreachable = 0.0;
    let mut out_sets: Vec<Vec<u32>> = vec![Vec::new(); sets.len()];
    for (p, r) in rev.iter().enumerate() {
        if r.is_empty() {
            unreachable += w(p);
            continue;
        }
        let id = *key_of.entry(r.as_slice()).or_insert_with(|| {
            weight.push(0.0);
            let id = (weight.len() - 1) as u32;
            for &j in r {
                out_sets[j as usize].push(id);
            }
            id
        });
        weight[id as usize] += w(p);
    }
    Aggregated { weight, sets: out_sets, unreachable }
}

/// The p-median instance: households closer to some candidate than to every existing station.
/// Returns it with the constant cost of the other households, the total weight and the points.
#[allow(clippy::too_many_arguments)]
fn pmedian_instance(
    cand_pts: &[Unit3],
    scope: &[u32],
    hh: &crate::model::Households,
    dist: &[f64],
    group: &[u32],
    limit: usize,
    budget: &Budget,
    progress: &mut dyn FnMut(&str, u64, u64),
) -> Result<(Instance, f64, f64, usize), PlanError> {
    const WHAT: &str = "household × candidate distance pairs";
    progress("distance pairs", 0, scope.len() as u64);
    let tree = tree_of(cand_pts);
    let reach = |h: u32| {
        let b = dist[h as usize];
        let p = to_unit(hh.lon[h as usize], hh.lat[h as usize]);
        (p, b, if b.is_finite() { m_to_chord_2(b) } else { 4.0 })
    };
    refuse_over(
        WHAT,
        estimate_pairs(scope.len(), |i| {
            let (p, _, r2) = reach(scope[i]);
            tree.locate_within_distance(p, r2).count()
        }),
        limit,
    )?;
    let guard = PairGuard::new(limit, budget);
    let near: Vec<Vec<(u32, f64)>> = scope
        .par_iter()
        .with_min_len(1024)
        .map(|&h| {
            if guard.over() || budget.exhausted() {
                return Vec::new();
            }
            let (p, b, r2) = reach(h);
            let v: Vec<(u32, f64)> = tree
                .locate_within_distance(p, r2)
                .map(|e| (e.data, chord_2_to_m(chord_2(p, *e.geom()))))
                .filter(|&(_, d)| d < b)
                .collect();
            guard.add(v.len());
            v
        })
        .collect();
    guard.finish(WHAT)?;
    let mut weight = Vec::new();
    let mut base = Vec::new();
    let mut lists: Vec<Vec<(u32, f64)>> = vec![Vec::new(); cand_pts.len()];
    let mut const_cost = 0.0;
    let mut wsum = 0.0;
    for (p, &h) in scope.iter().enumerate() {
        let w = f64::from(hh.veterans[h as usize]);
        wsum += w;
        if near[p].is_empty() {
            const_cost += w * dist[h as usize];
            continue;
        }
        let i = weight.len() as u32;
        weight.push(w);
        base.push(dist[h as usize]);
        for &(j, d) in &near[p] {
            lists[j as usize].push((i, d));
        }
    }
    progress("distance pairs", scope.len() as u64, scope.len() as u64);
    let n = weight.len();
    Ok((Instance::new(weight, base, &lists, group.to_vec()), const_cost, wsum, n))
}

/// The capacitated instance: households in scope, the existing stations of the level that
/// reach them (within the plan radius or their own, whichever is larger) and the candidates.
#[allow(clippy::too_many_arguments)]
fn cap_instance(
    ds: &Dataset,
    an: &Analysis,
    level: Level,
    radius: f64,
    scope: &[u32],
    cand_pts: &[Unit3],
    group: &[u32],
    limit: usize,
    budget: &Budget,
    progress: &mut dyn FnMut(&str, u64, u64),
) -> Result<capacity::CapInstance, PlanError> {
    const WHAT: &str = "household × station pairs (capacity)";
    progress("capacity pairs", 0, scope.len() as u64);
    let st = &ds.stations;
    let hh = &ds.households;
    let idx = &an.indexes.stations;
    let mut reach_max = radius;
    for s in 0..st.len() {
        if st.active[s] && st.level[s] == level {
            reach_max = reach_max.max(st.radius_of(s as u32, &ds.standard));
        }
    }
    let r2 = m_to_chord_2(radius);
    let ctree = tree_of(cand_pts);
    // The pairs before building them: candidates within the radius and existing stations
    // within the largest reach, of a sample of the households.
    refuse_over(
        WHAT,
        estimate_pairs(scope.len(), |i| {
            let h = scope[i] as usize;
            let p = to_unit(hh.lon[h], hh.lat[h]);
            ctree.locate_within_distance(p, r2).count() + idx.within(level, p, m_to_chord_2(reach_max)).count()
        }),
        limit,
    )?;
    let guard = PairGuard::new(limit, budget);
    let mut existing_id: HashMap<u32, u32> = HashMap::new();
    type Near = Vec<(f64, u32)>;
    let per: Vec<(Near, Near)> = scope
        .par_iter()
        .with_min_len(1024)
        .map(|&h| {
            if guard.over() || budget.exhausted() {
                return (Vec::new(), Vec::new());
            }
            let p = to_unit(hh.lon[h as usize], hh.lat[h as usize]);
            let ex: Vec<(f64, u32)> = idx
                .within(level, p, m_to_chord_2(reach_max))
                .filter_map(|s| {
                    let q = to_unit(st.lon[s as usize], st.lat[s as usize]);
                    let c2 = chord_2(p, q);
                    let reach = radius.max(st.radius_of(s, &ds.standard));
                    (c2 <= m_to_chord_2(reach)).then(|| (chord_2_to_m(c2), s))
                })
                .collect();
            let cs: Vec<(f64, u32)> =
                ctree.locate_within_distance(p, r2).map(|e| (chord_2_to_m(chord_2(p, *e.geom())), e.data)).collect();
            guard.add(ex.len() + cs.len());
            (ex, cs)
        })
        .collect();
    guard.finish(WHAT)?;
    let mut weight = Vec::with_capacity(scope.len());
    let mut raw: Vec<(f64, u32, u32, bool)> = Vec::new();
    for (p, &h) in scope.iter().enumerate() {
        weight.push(f64::from(hh.veterans[h as usize]));
        for &(d, s) in &per[p].0 {
            let n = existing_id.len() as u32;
            let e = *existing_id.entry(s).or_insert(n);
            raw.push((d, p as u32, e, true));
        }
        for &(d, j) in &per[p].1 {
            raw.push((d, p as u32, j, false));
        }
    }
    let ne = existing_id.len();
    let pairs = raw.into_iter().map(|(d, i, s, ex)| (d, i, if ex { s } else { ne as u32 + s })).collect();
    progress("capacity pairs", scope.len() as u64, scope.len() as u64);
    Ok(capacity::CapInstance::new(weight, ne, cand_pts.len(), pairs, group.to_vec()))
}
