//! Station siting (pure computation on an in-memory [`Dataset`] and its [`Analysis`]; the only
//! I/O, reading a candidate CSV and writing plan files, is in [`io`]).
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
//! # Library entry point
//! [`solve`] (or [`solve_with_progress`]) takes a [`PlanRequest`] and returns a [`PlanResult`];
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
pub mod cli;
pub mod engine;
pub mod io;
mod summary;

pub use candidates::{parse_sites_csv, Candidate};

use std::collections::HashMap;
use std::str::FromStr;
use std::time::Instant;

use rayon::prelude::*;
use rstar::primitives::GeomWithData;
use rstar::RTree;
use serde::{Deserialize, Serialize};

use crate::analysis::Analysis;
use crate::index::sphere::{chord_2, chord_2_to_m, m_to_chord_2, to_unit, Unit3};
use crate::model::{Dataset, Level, UnitIdx, NO_UNIT};

use engine::{Constraints, CoverConstraints, Instance, Options, NO_GROUP};

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
    /// The radius is not a positive number of metres.
    #[error("radius must be a positive number of metres, got {0}")]
    BadRadius(f64),
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
    /// Every admin unit of the plan's level and above, before and after.
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
    let t0 = Instant::now();
    let mut timings: Vec<(String, f64)> = Vec::new();
    let mut lap = Instant::now();
    let mut tick = |name: &str, timings: &mut Vec<(String, f64)>| {
        timings.push((name.to_string(), lap.elapsed().as_secs_f64()));
        lap = Instant::now();
    };
    let mut notes = Vec::new();
    let level = req.level;
    let radius = req.radius_m.unwrap_or_else(|| ds.standard.radius_m(level));
    if !(radius.is_finite() && radius > 0.0) {
        return Err(PlanError::BadRadius(radius));
    }
    let k = match req.problem {
        Problem::Mclp | Problem::Pmedian => match req.new {
            Some(k) if k > 0 => k,
            _ => return Err(PlanError::MissingK(req.problem.as_str())),
        },
        Problem::Lscp => req.new.unwrap_or(usize::MAX),
    };
    if let Some(t) = req.target {
        if !(t > 0.0 && t <= 1.0) {
            return Err(PlanError::BadTarget(t));
        }
        if req.problem != Problem::Lscp {
            return Err(PlanError::BadOption("--target applies to lscp only".into()));
        }
    }
    if let Some(c) = req.capacity {
        if c == 0 {
            return Err(PlanError::BadOption("capacity must be at least 1 veteran".into()));
        }
        if req.problem != Problem::Mclp {
            return Err(PlanError::BadOption("--capacity applies to mclp only".into()));
        }
    }
    if req.max_per_county == Some(0) {
        return Err(PlanError::BadOption("--max-per-county must be at least 1".into()));
    }
    let within = match &req.within {
        Some(code) => Some(ds.divisions.find(code.trim()).ok_or_else(|| PlanError::UnknownCode(code.clone()))?),
        None => None,
    };
    let r2 = m_to_chord_2(radius);

    // Households: scope, existing coverage and distance at this level.
    let hh = &ds.households;
    let asg = &an.assignment;
    let st = &ds.stations;
    let house = summary::Households::new(ds, an, level, radius);
    let in_scope = |h: usize| -> bool {
        hh.veterans[h] > 0
            && match within {
                None => true,
                Some(u) => asg.unit[h] != NO_UNIT && ds.divisions.is_within(asg.unit[h], u),
            }
    };
    let scope: Vec<u32> = (0..hh.len()).filter(|&h| in_scope(h)).map(|h| h as u32).collect();
    tick("demand", &mut timings);

    // Candidates.
    let mut cands = candidates::build(ds, an, level, radius, &req.candidates, &house.covered, &scope)?;
    let total_cands = cands.len();
    if let Some(u) = within {
        cands.retain(|c| c.unit != NO_UNIT && ds.divisions.is_within(c.unit, u));
    }
    let by_id: HashMap<&str, usize> = cands.iter().enumerate().map(|(i, c)| (c.id.as_str(), i)).collect();
    let mut fixed = Vec::new();
    for id in &req.require {
        match by_id.get(id.as_str()) {
            Some(&j) => {
                if !fixed.contains(&(j as u32)) {
                    fixed.push(j as u32)
                }
            }
            None => return Err(PlanError::UnknownSite { what: "required", id: id.clone() }),
        }
    }
    let mut excluded = Vec::new();
    let mut excluded_set = std::collections::HashSet::new();
    for id in &req.exclude {
        match by_id.get(id.as_str()) {
            Some(&j) => {
                if fixed.contains(&(j as u32)) {
                    return Err(PlanError::Conflict(format!("site {id:?} is both required and excluded")));
                }
                // Duplicates are folded (a repeated id counted twice underflowed `usable`).
                if excluded_set.insert(j) {
                    excluded.push(j as u32)
                }
            }
            None => return Err(PlanError::UnknownSite { what: "excluded", id: id.clone() }),
        }
    }
    drop(by_id);
    // Groups (counties).
    let mut county_of: HashMap<UnitIdx, u32> = HashMap::new();
    let group: Vec<u32> = cands
        .iter()
        .map(|c| match (c.unit != NO_UNIT).then(|| ds.divisions.ancestor(c.unit, Level::County)).flatten() {
            Some(u) => {
                let n = county_of.len() as u32;
                *county_of.entry(u).or_insert(n)
            }
            None => NO_GROUP,
        })
        .collect();
    if let Some(m) = req.max_per_county {
        let ungrouped = group.iter().filter(|&&g| g == NO_GROUP).count();
        if ungrouped > 0 {
            notes.push(format!("{ungrouped} candidates lie in no county; --max-per-county does not limit them"));
        }
        let mut per: HashMap<u32, usize> = HashMap::new();
        for &f in &fixed {
            *per.entry(group[f as usize]).or_default() += 1;
        }
        if per.iter().any(|(&g, &n)| g != NO_GROUP && n > m) {
            return Err(PlanError::Conflict(format!("the required sites put more than {m} in one county")));
        }
    }
    let usable = cands.len() - excluded.len();
    if usable == 0 || cands.is_empty() {
        let why = if total_cands == 0 {
            "the candidate source gave none".to_string()
        } else {
            format!("none of the {total_cands} candidates is left after --within and --exclude")
        };
        return Err(PlanError::NoCandidates(why));
    }
    if req.problem != Problem::Lscp && k > usable {
        return Err(PlanError::KTooLarge { k, candidates: usable });
    }
    if fixed.len() > k {
        return Err(PlanError::Conflict(format!("{} required sites are more than --new {k}", fixed.len())));
    }
    tick("candidates", &mut timings);
    let cand_pts: Vec<Unit3> = cands.iter().map(|c| to_unit(c.lon, c.lat)).collect();
    let opts = Options::default();
    let w_of = |h: u32| f64::from(hh.veterans[h as usize]);

    let mut served_before = None;
    let mut served_after = None;
    let mut site_served: Option<Vec<f64>> = None;
    let mut unreachable = 0u64;
    let (chosen, gains, objective, bound, gap, objective_name, swaps, bound_iterations, demand_points);
    match req.problem {
        Problem::Mclp | Problem::Lscp => {
            // Uncovered households in scope, and the candidates reaching each.
            let unc: Vec<u32> = scope.iter().copied().filter(|&h| !house.covered[h as usize]).collect();
            let unc_pts: Vec<Unit3> = unc.iter().map(|&h| to_unit(hh.lon[h as usize], hh.lat[h as usize])).collect();
            let sets = reach_sets(&cand_pts, &unc_pts, r2, progress);
            let agg = aggregate(&sets, unc.len(), |p| w_of(unc[p]));
            unreachable = agg.unreachable as u64;
            demand_points = agg.weight.len();
            let inst = Instance::covering(agg.weight, &agg.sets, group.clone());
            tick("coverage sets", &mut timings);
            if req.problem == Problem::Mclp {
                let c =
                    Constraints { k, fixed: fixed.clone(), group_cap: req.max_per_county, excluded: excluded.clone() };
                let sol = engine::solve_minsum(&inst, &c, &opts, progress);
                swaps = sol.swaps;
                bound_iterations = sol.bound_iterations;
                if sol.sites.len() < k {
                    notes.push(format!(
                        "only {} sites add coverage (of {k} asked){}",
                        sol.sites.len(),
                        if req.max_per_county.is_some() { " under --max-per-county" } else { "" }
                    ));
                }
                if let Some(cap) = req.capacity {
                    let ci = cap_instance(ds, an, level, radius, &scope, &cand_pts, &group, progress);
                    let cs = capacity::solve_capacitated(
                        &ci,
                        f64::from(cap),
                        k,
                        &fixed,
                        &excluded,
                        req.max_per_county,
                        progress,
                    );
                    let existing_reaching = {
                        let mut seen = vec![false; ci.n_existing];
                        for &(_, _, s) in &ci.pairs {
                            if (s as usize) < ci.n_existing {
                                seen[s as usize] = true;
                            }
                        }
                        seen.iter().filter(|&&x| x).count()
                    };
                    let covered_scope_before: f64 =
                        scope.iter().filter(|&&h| house.covered[h as usize]).map(|&h| w_of(h)).sum();
                    let ub_after = (covered_scope_before + sol.saving_bound())
                        .min((existing_reaching + k) as f64 * f64::from(cap));
                    let ub = (ub_after - cs.served_before).max(0.0);
                    objective = cs.served_after - cs.served_before;
                    bound = ub.max(objective);
                    gap = rel(bound - objective, bound);
                    served_before = Some(cs.served_before);
                    served_after = Some(cs.served_after);
                    site_served = Some(cs.site_served.clone());
                    chosen = cs.sites;
                    gains = cs.gains;
                    objective_name = "veterans newly served (capacity-limited)".to_string();
                } else {
                    objective = sol.saving;
                    bound = sol.saving_bound().max(sol.saving);
                    gap = rel(bound - objective, bound);
                    chosen = sol.sites;
                    gains = sol.gains;
                    objective_name = "veterans newly covered".to_string();
                }
            } else {
                let scope_w: f64 = scope.iter().map(|&h| w_of(h)).sum();
                let before_w: f64 = scope.iter().filter(|&&h| house.covered[h as usize]).map(|&h| w_of(h)).sum();
                let reachable: f64 = inst.weight.iter().sum();
                let want = match req.target {
                    Some(t) => (t * scope_w - before_w).max(0.0),
                    None => reachable,
                };
                if want > reachable + 1e-9 {
                    notes.push(format!(
                        "target {:.2}% is out of reach: the candidates can bring coverage to {:.2}% at most",
                        req.target.unwrap_or(1.0) * 100.0,
                        (before_w + reachable) / scope_w.max(1.0) * 100.0
                    ));
                }
                let c = CoverConstraints {
                    target: want.min(reachable),
                    fixed: fixed.clone(),
                    group_cap: req.max_per_county,
                    excluded: excluded.clone(),
                };
                let sol = engine::solve_cover(&inst, &c, &opts, progress);
                if !sol.reached {
                    notes.push(format!(
                        "the target is not reached: {} of {} veterans{}",
                        sol.covered,
                        sol.target,
                        if req.max_per_county.is_some() { " under --max-per-county" } else { "" }
                    ));
                }
                if sol.sites.len() > k {
                    return Err(PlanError::BadOption(format!(
                        "reaching the target needs {} sites, more than --new {k}",
                        sol.sites.len()
                    )));
                }
                swaps = 0;
                bound_iterations = sol.bound_iterations;
                objective = sol.sites.len() as f64;
                bound = if sol.reached { sol.lower_sites as f64 } else { 0.0 };
                gap = rel(objective - bound, objective);
                chosen = sol.sites;
                gains = sol.gains;
                objective_name = "new sites".to_string();
            }
        }
        Problem::Pmedian => {
            if st.level.iter().zip(&st.active).all(|(&l, &a)| l != level || !a) {
                return Err(PlanError::BadOption(format!(
                    "p-median at {level} level needs at least one active {level} station to measure distances from"
                )));
            }
            let (inst, const_cost, wsum, npts) = pmedian_instance(&cand_pts, &scope, hh, &house.dist, &group, progress);
            demand_points = npts;
            tick("distance pairs", &mut timings);
            let c = Constraints { k, fixed: fixed.clone(), group_cap: req.max_per_county, excluded: excluded.clone() };
            let sol = engine::solve_minsum(&inst, &c, &opts, progress);
            swaps = sol.swaps;
            bound_iterations = sol.bound_iterations;
            objective = (sol.cost + const_cost) / wsum;
            bound = ((sol.lower_cost + const_cost) / wsum).min(objective);
            gap = rel(objective - bound, objective);
            chosen = sol.sites;
            gains = sol.gains;
            objective_name = "veteran-weighted mean distance to the nearest station, metres".to_string();
            if chosen.len() < k {
                notes.push(format!("only {} sites bring anyone closer (of {k} asked)", chosen.len()));
            }
        }
    }
    tick("solve", &mut timings);

    // Coverage before and after, per unit.
    let chosen_pts: Vec<Unit3> = chosen.iter().map(|&j| cand_pts[j as usize]).collect();
    let after = house.after(hh, &chosen_pts, r2);
    let newly = house.newly_covered(hh, &scope, &chosen_pts, r2);
    let sites: Vec<ChosenSite> = chosen
        .iter()
        .enumerate()
        .map(|(r, &j)| {
            let c = &cands[j as usize];
            let codes = core::array::from_fn(|l| {
                if c.unit == NO_UNIT {
                    return String::new();
                }
                let a = ds.divisions.chain(c.unit)[l];
                if a == NO_UNIT {
                    String::new()
                } else {
                    ds.divisions.get(a).code.clone()
                }
            });
            ChosenSite {
                rank: r + 1,
                id: c.id.clone(),
                name: c.name.clone(),
                source: c.source.to_string(),
                lon: c.lon,
                lat: c.lat,
                required: fixed.contains(&j),
                newly_covered_veterans: newly[r],
                gain: gains[r],
                served_veterans: site_served.as_ref().map(|s| s[r]),
                codes,
            }
        })
        .collect();
    let site_units: Vec<UnitIdx> = chosen.iter().map(|&j| cands[j as usize].unit).collect();
    let units = summary::units(ds, an, level, &house, &after, &site_units);
    let veterans: u64 = scope.iter().map(|&h| u64::from(hh.veterans[h as usize])).sum();
    let covered_before: u64 =
        scope.iter().filter(|&&h| house.covered[h as usize]).map(|&h| u64::from(hh.veterans[h as usize])).sum();
    let covered_after: u64 =
        scope.iter().filter(|&&h| after.covered[h as usize]).map(|&h| u64::from(hh.veterans[h as usize])).sum();
    let mean = |d: &[f64]| -> Option<f64> {
        let (mut s, mut w) = (0.0, 0.0);
        for &h in &scope {
            let x = d[h as usize];
            if x.is_finite() {
                s += x * w_of(h);
                w += w_of(h);
            }
        }
        (w > 0.0).then_some(s / w)
    };
    let mean_distance_before_m = mean(&house.dist);
    let mean_distance_after_m = mean(&after.dist);
    tick("summary", &mut timings);
    let mut request = req.clone();
    request.radius_m = Some(radius);
    Ok(PlanResult {
        request,
        radius_m: radius,
        objective_name,
        objective,
        bound,
        gap,
        sites,
        candidates: cands.len(),
        households: scope.len(),
        demand_points,
        veterans,
        covered_before,
        covered_after,
        unreachable_veterans: unreachable,
        served_before,
        served_after,
        mean_distance_before_m,
        mean_distance_after_m,
        units,
        swaps,
        bound_iterations,
        notes,
        seconds: t0.elapsed().as_secs_f64(),
        timings,
    })
}

fn rel(diff: f64, of: f64) -> f64 {
    if of.abs() < 1e-12 {
        0.0
    } else {
        (diff / of).max(0.0)
    }
}

type Tree = RTree<GeomWithData<Unit3, u32>>;

/// For each candidate, the demand points (positions in `dem_pts`) within squared chord `r2`.
fn reach_sets(
    cand_pts: &[Unit3],
    dem_pts: &[Unit3],
    r2: f64,
    progress: &mut dyn FnMut(&str, u64, u64),
) -> Vec<Vec<u32>> {
    progress("coverage sets", 0, cand_pts.len() as u64);
    let tree: Tree =
        RTree::bulk_load(dem_pts.iter().enumerate().map(|(p, &u)| GeomWithData::new(u, p as u32)).collect());
    let sets = cand_pts
        .par_iter()
        .map(|c| {
            let mut v: Vec<u32> = tree.locate_within_distance(*c, r2).map(|e| e.data).collect();
            v.sort_unstable();
            v
        })
        .collect();
    progress("coverage sets", cand_pts.len() as u64, cand_pts.len() as u64);
    sets
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
fn pmedian_instance(
    cand_pts: &[Unit3],
    scope: &[u32],
    hh: &crate::model::Households,
    dist: &[f64],
    group: &[u32],
    progress: &mut dyn FnMut(&str, u64, u64),
) -> (Instance, f64, f64, usize) {
    progress("distance pairs", 0, scope.len() as u64);
    let tree: Tree =
        RTree::bulk_load(cand_pts.iter().enumerate().map(|(j, &p)| GeomWithData::new(p, j as u32)).collect());
    let near: Vec<Vec<(u32, f64)>> = scope
        .par_iter()
        .with_min_len(1024)
        .map(|&h| {
            let b = dist[h as usize];
            let p = to_unit(hh.lon[h as usize], hh.lat[h as usize]);
            let r2 = if b.is_finite() { m_to_chord_2(b) } else { 4.0 };
            tree.locate_within_distance(p, r2)
                .map(|e| (e.data, chord_2_to_m(chord_2(p, *e.geom()))))
                .filter(|&(_, d)| d < b)
                .collect()
        })
        .collect();
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
    (Instance::new(weight, base, &lists, group.to_vec()), const_cost, wsum, n)
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
    progress: &mut dyn FnMut(&str, u64, u64),
) -> capacity::CapInstance {
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
    let ctree: Tree =
        RTree::bulk_load(cand_pts.iter().enumerate().map(|(j, &p)| GeomWithData::new(p, j as u32)).collect());
    let mut existing_id: HashMap<u32, u32> = HashMap::new();
    type Near = Vec<(f64, u32)>;
    let per: Vec<(Near, Near)> = scope
        .par_iter()
        .with_min_len(1024)
        .map(|&h| {
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
            (ex, cs)
        })
        .collect();
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
    capacity::CapInstance::new(weight, ne, cand_pts.len(), pairs, group.to_vec())
}
